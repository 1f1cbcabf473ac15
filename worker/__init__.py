"""The analysis service: finds nights that have ended and analyses each once."""
