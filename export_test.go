package fiberauth

// PasswordHashOps reports how many argon2 runs a has made.
func PasswordHashOps(a *Auth) int64 { return a.hasher.ops.Load() }
