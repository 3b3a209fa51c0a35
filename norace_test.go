//go:build !race

package fiberauth_test

// raceEnabled: this test binary was built with -race.
const raceEnabled = false
