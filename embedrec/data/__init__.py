"""embedrec.data: reading ratings and movies files into a prepared dataset (see ARCHITECTURE.md)."""
