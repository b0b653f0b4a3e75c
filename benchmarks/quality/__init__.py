"""What the models reach and what evaluating them costs: likelihood against its FLOP floor, one-class
anomaly detection."""
