"""Models: audio encoders, tokenisers, vector fields, the flow-matching model (built from synthinv.flow),
regression and the VAE + RealNVP baseline; sampler.py is the interface all three models implement."""
