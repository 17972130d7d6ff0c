"""Task 2: answering from the selected resources, with checked citations."""
