"""Default column specs for the market model frame (``forecaster.features.model_frame``).

placeholder, filled in below
"""
def market_specs(frame):
    raise NotImplementedError
