"""A finished suite to and from the Hub: publishing it, sealing a private split, and importing the
paper's published diffs."""
