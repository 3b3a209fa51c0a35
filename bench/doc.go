// Package bench measures fiberauth against github.com/gofiber/contrib/jwt
// (jwtware), the middleware its users come from: the guard benchmarks
// (guards_test.go), and the jwtware app that bench/wrk.sh runs beside the
// example. It is a module of its own so that jwtware is no requirement of
// fiberauth's users; go.work at the repository's root joins it to the
// others, and the root package's TestWorkspaceModules runs its tests from
// `go test ./...` there. BENCHMARKS.md has the figures and the commands.
package bench
