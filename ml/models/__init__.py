"""Model families and their foundations (see ml/zoo.py for the registry)."""
