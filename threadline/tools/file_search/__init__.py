"""file_search: files to text (`parse.py`), text to overlapping chunks (`chunk.py`)."""
