"""The Streamlit web dashboard (``streamlit run dashboard_continuous_learning.py``): a reader of
the store only."""
