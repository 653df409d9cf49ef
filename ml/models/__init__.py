"""Model families and their foundations (ml/zoo.py lists the families), and the parts of the model registry.

The registry's storage, artifacts and provenance live here; ml/registry.py registers, reads and moves models.
"""
