"""The API's routers (thin: parameters in, store function, schema out)."""
