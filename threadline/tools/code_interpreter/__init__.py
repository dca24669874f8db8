"""The code_interpreter tool: Python the model writes, run in a sandbox per thread."""
