"""Data-driven segmentation and prediction: clustering, churn and customer value.

- algorithms.py: numpy/scipy/scikit-learn only (arrays in, parameters and scores out; no ORM).
- data.py: features and outcomes from the database as of a cutoff, through the engine's temp tables.
- services.py: training, evaluation, PredictiveModel records and activation.

Production models compile to SQL (segmentation.engine.model_output_sql), so a recompute writes
churn_probability, predicted_orders_90d, predicted_value_365d and cluster for every customer
set-based. BG/NBD + Gamma-Gamma is implemented for comparison only (it does not compile to SQL).
"""
