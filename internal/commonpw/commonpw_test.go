package commonpw

import "testing"

func TestList(t *testing.T) {
	if n := Len(); n < 10000 {
		t.Fatalf("the list has %d passwords, want at least 10,000", n)
	}
	for _, p := range []string{"password", "PASSWORD", "Qwerty123", "123456789"} {
		if !Contains(p) {
			t.Errorf("%q is not on the list", p)
		}
	}
	for _, p := range []string{"correct horse battery staple", ""} {
		if Contains(p) {
			t.Errorf("%q is on the list", p)
		}
	}
}
