"""Embedders: text to vectors for file_search. The bundled local model serves when nothing is
configured; an upstream's `/embeddings` endpoint serves when the models file names one."""
