"""This SDK (dify_oapi from the repository's editable install), through its public API."""
