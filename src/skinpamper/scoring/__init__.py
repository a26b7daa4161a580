"""What training and evaluation both need to score a model: metrics, clinical metrics, calibration,
test-time augmentation and the patient-metadata model. Below both, so neither reaches up."""
