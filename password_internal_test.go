package fiberauth

import (
	"testing"

	"github.com/alexedwards/argon2id"
)

// The dummy hash must cost exactly what a real one does, or unknown accounts
// answer faster than known ones.
func TestDummyHashHasDefaultParams(t *testing.T) {
	p, salt, key, err := argon2id.DecodeHash(dummyHashDefault)
	if err != nil {
		t.Fatalf("dummy hash does not decode: %v", err)
	}
	if *p != (argon2id.Params{Memory: minHashParams.Memory, Iterations: minHashParams.Iterations, Parallelism: minHashParams.Parallelism, SaltLength: uint32(len(salt)), KeyLength: uint32(len(key))}) ||
		len(salt) != int(minHashParams.SaltLength) || len(key) != int(minHashParams.KeyLength) {
		t.Fatalf("dummy hash params %+v (salt %d, key %d), want %+v", p, len(salt), len(key), minHashParams)
	}
}
