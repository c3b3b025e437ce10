"""What a campaign is: loading, normalising, templates, chunking, windows, and the store."""
