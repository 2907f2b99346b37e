"""scan: photo → classification → disposal rule → guidance → reward, as an asynchronous job with SSE progress."""
