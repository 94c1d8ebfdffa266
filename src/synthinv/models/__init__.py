"""Models: audio encoders, tokenisers, vector fields, flow matching and regression."""
