"""HTTP routing service speaking the API of ccxt's OrderRouter client (FastAPI)."""
