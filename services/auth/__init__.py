"""auth: social login (Kakao, Google, Naver, dev), JWT sessions with rotation, JWKS."""
