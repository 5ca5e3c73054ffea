"""Network-namespace lab for mpathd's integration tests, demo and bench."""
