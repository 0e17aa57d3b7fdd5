"""Release rehearsal on real servers: throwaway PostgreSQL, Redis, proxies and app replicas."""
