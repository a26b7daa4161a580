"""Skin Pamper: train, evaluate, explain and serve skin-lesion classifiers.

A research tool, not a medical device: nothing it prints is a diagnosis.
Importing the package does no work (no downloads, no folders, no prints, no Keras import).
"""

__version__ = "0.1.0"

NOT_A_DIAGNOSIS = (
    "Research tool, not a medical device: this output is not a diagnosis. "
    "See a dermatologist about any skin lesion that worries you."
)
