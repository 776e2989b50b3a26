"""sky stage."""
