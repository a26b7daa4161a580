"""Evaluation of a trained run on its test split or any labelled set, Grad-CAM, and run comparison."""
