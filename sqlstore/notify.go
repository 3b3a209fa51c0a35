package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore/internal/driver"
)

// Change notices (fiberauth.Notifier). Every change that another instance
// must hear of is announced in its own transaction, so a notice goes out if
// and only if the change commits:
//   - PostgreSQL: pg_notify on a channel named after the schema, heard by a
//     connection of each Store that LISTENs (outside the pool), which
//     reconnects when it breaks and then reports the gap (Change.Lost);
//   - SQLite: a row in fiberauth_changes, which each Store polls on one
//     connection every poll interval, first asking PRAGMA data_version
//     whether anyone has committed anything since; a missing seq (rows
//     deleted before it read them) or a failed poll is a gap.

// DefaultPollInterval is how often a SQLite Store with subscribers looks for
// other processes' changes.
const DefaultPollInterval = 25 * time.Millisecond

// changeRetention is how long fiberauth_changes keeps a row (DeleteExpired
// deletes older ones): far longer than any poll takes.
const changeRetention = 10 * time.Minute

// maxNoticeBytes bounds one notice's payload (PostgreSQL allows just under
// 8000): a change naming many families is announced in several.
const maxNoticeBytes = 7000

// notice is a fiberauth.Change on the wire.
type notice struct {
	User     string   `json:"u,omitempty"`
	ETag     string   `json:"e,omitempty"`
	Sessions []string `json:"s,omitempty"`
}

// encodeChange splits c into payloads of at most maxNoticeBytes (a family
// id longer than that gets one of its own).
func encodeChange(c fiberauth.Change) ([]string, error) {
	var out []string
	n := notice{User: c.UserID, ETag: c.ETag}
	size := jsonSize(c.UserID) + jsonSize(c.ETag) + 32
	flush := func() error {
		b, err := json.Marshal(n)
		if err != nil {
			return err
		}
		out = append(out, string(b))
		n, size = notice{}, 32
		return nil
	}
	for _, id := range c.Sessions {
		w := jsonSize(id) + 1
		if size+w > maxNoticeBytes && (len(n.Sessions) > 0 || n.User != "") {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		n.Sessions = append(n.Sessions, id)
		size += w
	}
	if n.User != "" || len(n.Sessions) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonSize is how many bytes s takes as a JSON string (escapes included).
func jsonSize(s string) int {
	b, _ := json.Marshal(s)
	return len(b)
}

// announce records c in tx, to be heard when tx commits.
func (s *Store) announce(ctx context.Context, tx *sql.Tx, at time.Time, c fiberauth.Change) error {
	payloads, err := encodeChange(c)
	if err != nil {
		return err
	}
	for _, p := range payloads {
		if s.pg {
			_, err = tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, s.channel, p)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO fiberauth_changes (seq, at, payload)
				SELECT COALESCE(MAX(seq), 0) + 1, $1, $2 FROM fiberauth_changes`, micros(at), p)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: announcing a change: %w", err)
		}
	}
	return nil
}

// channelFor is the NOTIFY channel of a schema: stores on other schemas of
// the same database do not hear each other.
func channelFor(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return "fiberauth_changes_" + hex.EncodeToString(h[:8])
}

// subscribers are the functions Subscribe registered, and the listener
// that feeds them while there are any.
type subscribers struct {
	mu     sync.RWMutex // held for reading while announcing; cancel waits for it
	next   int
	fns    map[int]func(fiberauth.Change)
	stop   context.CancelFunc // ends the listener
	done   chan struct{}      // closed when the listener has ended
	closed bool               // the Store is closed
}

// Subscribe implements fiberauth.Notifier. The first subscription starts
// the Store's listener: on PostgreSQL a connection of its own (outside the
// pool) that LISTENs; on SQLite a connection taken from the pool for as long
// as anyone listens, which polls (so a pool limited to one connection is
// refused). It returns once the listener hears every
// change committed from then on. The listener ends with the last
// subscription, or Close.
func (s *Store) Subscribe(fn func(fiberauth.Change)) (cancel func(), err error) {
	subs := &s.subs
	subs.mu.Lock()
	defer subs.mu.Unlock()
	if subs.closed {
		return nil, errors.New("sqlstore: subscribe: the store is closed")
	}
	if subs.fns == nil {
		subs.fns = map[int]func(fiberauth.Change){}
	}
	if len(subs.fns) == 0 {
		if err := s.startListener(); err != nil {
			return nil, err
		}
	}
	id := subs.next
	subs.next++
	subs.fns[id] = fn
	var once sync.Once
	return func() { once.Do(func() { s.unsubscribe(id) }) }, nil
}

func (s *Store) unsubscribe(id int) {
	subs := &s.subs
	subs.mu.Lock()
	delete(subs.fns, id)
	var done chan struct{}
	if len(subs.fns) == 0 && subs.stop != nil {
		subs.stop()
		done, subs.stop = subs.done, nil
	}
	subs.mu.Unlock()
	if done != nil {
		<-done
	}
}

// stopListening ends the listener for Close.
func (s *Store) stopListening() {
	subs := &s.subs
	subs.mu.Lock()
	subs.closed = true
	clear(subs.fns)
	var done chan struct{}
	if subs.stop != nil {
		subs.stop()
		done, subs.stop = subs.done, nil
	}
	subs.mu.Unlock()
	if done != nil {
		<-done
	}
}

// tell calls every subscriber with c.
func (subs *subscribers) tell(c fiberauth.Change) {
	subs.mu.RLock()
	defer subs.mu.RUnlock()
	for _, fn := range subs.fns {
		fn(c)
	}
}

// tellPayload decodes a notice and tells it; one that does not decode
// (nobody but sqlstore should write there) is taken as a gap.
func (subs *subscribers) tellPayload(p string) {
	var n notice
	if err := json.Unmarshal([]byte(p), &n); err != nil {
		subs.tell(fiberauth.Change{Lost: true})
		return
	}
	subs.tell(fiberauth.Change{UserID: n.User, ETag: n.ETag, Sessions: n.Sessions})
}

// startListener starts the listener, with s.subs.mu held; it returns once
// the listener hears every change committed from then on.
func (s *Store) startListener() error {
	ctx, stop := context.WithCancel(context.Background())
	var (
		run func()
		err error
	)
	if s.pg {
		run, err = s.pgListener(ctx)
	} else {
		run, err = s.sqlitePoller(ctx)
	}
	if err != nil {
		stop()
		return err
	}
	done := make(chan struct{})
	s.subs.stop, s.subs.done = stop, done
	go func() {
		defer close(done)
		run()
	}()
	return nil
}

// --- PostgreSQL ---

// Reconnection delays of the PostgreSQL listener: doubled after each
// failure, from the first to the last.
const (
	firstRetry = 50 * time.Millisecond
	lastRetry  = 2 * time.Second
)

// pgListener connects the listener and returns its loop.
func (s *Store) pgListener(ctx context.Context) (func(), error) {
	connect, err := s.pgConnector(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := s.listen(ctx, connect)
	if err != nil {
		return nil, err
	}
	return func() {
		retry := firstRetry
		for {
			connected := time.Now()
			for {
				payload, err := conn.Wait(ctx)
				if err != nil {
					if ctx.Err() == nil {
						s.log.Warn("sqlstore: the change listener lost its connection; reconnecting (until it is back, other instances' changes are seen within CacheTTL)", "err", err)
					}
					break
				}
				s.subs.tellPayload(payload)
			}
			conn.Close()
			// A connection that lasted keeps the next try quick; one that
			// broke at once (a server that drops it) waits as after a
			// failure, so that instances do not empty their caches in a loop.
			if time.Since(connected) > lastRetry {
				retry = firstRetry
			}
			// Reconnect; whatever was announced meanwhile is lost.
			warned := false
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(retry):
				}
				retry = min(2*retry, lastRetry)
				if conn, err = s.listen(ctx, connect); err == nil {
					break
				}
				if retry == lastRetry && !warned {
					warned = true
					s.log.Warn("sqlstore: the change listener cannot reconnect; trying every 2 s", "err", err)
				}
			}
			s.log.Info("sqlstore: the change listener is back; the caches are emptied")
			s.subs.tell(fiberauth.Change{Lost: true})
		}
	}, nil
}

// pgConnector is how to open the listener's connections, configured as
// those of the pool.
func (s *Store) pgConnector(ctx context.Context) (driver.Listen, error) {
	if s.drv.Listener == nil {
		return nil, fmt.Errorf("sqlstore: the %s driver cannot listen for change notices", s.drv)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listener: %w", err)
	}
	defer c.Close()
	var connect driver.Listen
	err = c.Raw(func(dc any) error {
		var err error
		connect, err = s.drv.Listener(dc, listenerName(s.channel))
		return err
	})
	return connect, err
}

// listenerName is the application_name of a listener's connection.
func listenerName(channel string) string { return "fiberauth listener " + channel }

// listen opens a connection that LISTENs on the store's channel.
func (s *Store) listen(ctx context.Context, connect driver.Listen) (driver.Listening, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	conn, err := connect(cctx, s.channel)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listener: %w", err)
	}
	return conn, nil
}

// --- SQLite ---

// sqlitePoller takes the poller's connection, notes where the change log
// ends, and returns its loop.
func (s *Store) sqlitePoller(ctx context.Context) (func(), error) {
	if n := s.db.Stats().MaxOpenConnections; n == 1 {
		return nil, errors.New("sqlstore: change notices on SQLite hold one connection of the pool while an Auth listens: allow at least 2 (sql.DB.SetMaxOpenConns)")
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	conn, err := s.db.Conn(cctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: poller: %w", err)
	}
	var version, last int64
	err = conn.QueryRowContext(cctx, `PRAGMA data_version`).Scan(&version)
	if err == nil {
		err = conn.QueryRowContext(cctx, `SELECT COALESCE(MAX(seq), 0) FROM fiberauth_changes`).Scan(&last)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlstore: poller: %w", err)
	}
	return func() {
		defer func() { conn.Close() }()
		t := time.NewTicker(s.poll)
		defer t.Stop()
		lost := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var v int64
			if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
				// The connection may be broken: take another (its
				// data_version differs, so the next poll reads the log).
				if !lost && ctx.Err() == nil {
					s.log.Warn("sqlstore: the change poller failed; retrying", "err", err)
				}
				lost = true
				if c, err := s.db.Conn(ctx); err == nil {
					conn.Close()
					conn = c
				}
				continue
			}
			if v == version && !lost {
				continue
			}
			next, gap, err := s.readChanges(ctx, conn, last)
			if err != nil {
				lost = true
				continue
			}
			version, last = v, next
			if gap || lost {
				lost = false
				s.subs.tell(fiberauth.Change{Lost: true})
			}
		}
	}, nil
}

// readChanges tells the changes after seq last, and returns the last seq
// read and whether some were missing.
func (s *Store) readChanges(ctx context.Context, conn *sql.Conn, last int64) (int64, bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := conn.QueryContext(ctx, `SELECT seq, payload FROM fiberauth_changes WHERE seq > $1 ORDER BY seq`, last)
	if err != nil {
		return last, false, err
	}
	defer rows.Close()
	gap := false
	var payloads []string
	for rows.Next() {
		var (
			seq int64
			p   string
		)
		if err := rows.Scan(&seq, &p); err != nil {
			return last, false, err
		}
		gap = gap || seq != last+1
		last = seq
		payloads = append(payloads, p)
	}
	if err := rows.Err(); err != nil {
		return last, false, err
	}
	for _, p := range payloads {
		s.subs.tellPayload(p)
	}
	return last, gap, nil
}
