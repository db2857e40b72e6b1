"""The pure domain: standard library only, tested without Flask, database or network."""
