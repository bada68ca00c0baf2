"""Operations: resolve, mirror, prune, doctor. Plain functions over the clients they are handed
(`clients.Clients`); they return results and never parse argv or print."""
