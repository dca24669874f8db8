"""file_search: files to text (`parse.py`), text to overlapping chunks (`chunk.py`), hybrid
search over a store's chunks (`search.py`, with attribute `filters.py`), and the tool a run
calls (`tool.py`)."""
