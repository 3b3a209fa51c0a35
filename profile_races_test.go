package fiberauth_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func (h *harness) postRaw(path, body string) (int, map[string]any) {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if s, ok := m["access_token"].(string); ok {
		h.keep(s)
	}
	if s, ok := m["refresh_token"].(string); ok {
		h.keep(s)
	}
	return resp.StatusCode, m
}

// Kept refreshes racing a logout: any access token a kept refresh answered
// is refused once the logout has answered.
func TestProfilesKeepRacesLogout(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	for range 20 {
		p := h.login("ada@example.com", goodPassword)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var issued []string
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, m := h.postRaw("/v1/token-refresh", `{"username":"ada@example.com","refresh_token":"`+p.refresh+`"}`)
				if st == 200 {
					mu.Lock()
					issued = append(issued, m["access_token"].(string))
					mu.Unlock()
				} else if st >= 500 {
					t.Errorf("kept refresh: %d %v", st, m)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, m := h.postRaw("/auth/logout", `{"refresh_token":"`+p.refresh+`"}`); st != 200 {
				t.Errorf("logout: %d %v", st, m)
			}
		}()
		wg.Wait()
		for _, a := range issued {
			if st := h.profileStatus(a); st != 401 {
				t.Fatalf("an access token from a kept refresh racing the logout answers %d after it", st)
			}
		}
	}
}

// Kept and rotating refreshes of one token at once: never a 5xx, never two
// new refresh tokens; and since a kept client never rotates, a kept
// refresh that finds the token rotated away is reuse: the family ends, and
// whatever the rotations answered stops working.
func TestProfilesKeepRacesRotation(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	for range 10 {
		p := h.login("ada@example.com", goodPassword)
		var wg sync.WaitGroup
		var mu sync.Mutex
		newRefresh := map[string]bool{}
		reused := false
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					st, m := h.postRaw("/v1/token-refresh", `{"username":"ada@example.com","refresh_token":"`+p.refresh+`"}`)
					if st >= 500 {
						t.Errorf("kept: %d %v", st, m)
					}
					return
				}
				st, m := h.postRaw("/auth/refresh", `{"refresh_token":"`+p.refresh+`"}`)
				switch {
				case st == 200:
					mu.Lock()
					newRefresh[m["refresh_token"].(string)] = true
					mu.Unlock()
				case st == 401:
					mu.Lock()
					reused = true // the family ended under it
					mu.Unlock()
				default:
					t.Errorf("rotating: %d %v", st, m)
				}
			}()
		}
		wg.Wait()
		if len(newRefresh) > 1 {
			t.Fatalf("%d different new refresh tokens", len(newRefresh))
		}
		if st, _ := h.postRaw("/v1/token-refresh", `{"username":"ada@example.com","refresh_token":"`+p.refresh+`"}`); st != 401 {
			t.Fatalf("the old token, kept, after the race: %d", st)
		}
		// Whether a kept refresh found it rotated or not, the old token,
		// presented now, has ended the family: the new token is dead too.
		for r := range newRefresh {
			if st, _ := h.postRaw("/v1/token-refresh", `{"username":"ada@example.com","refresh_token":"`+r+`"}`); st != 401 {
				t.Fatalf("the rotated token after reuse of the old one: %d (reused during the race: %v)", st, reused)
			}
		}
	}
}
