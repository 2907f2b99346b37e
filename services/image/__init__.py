"""image: presigned uploads, verification (size + magic bytes), the image-URL allow-list."""
