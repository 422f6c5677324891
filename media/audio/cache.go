package audio

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// Options configure a Cache. Zero values take the defaults shown.
type Options struct {
	MaxBytes     int64         // cap of all cached converted audio; 64 MiB, least recently used evicted
	MaxFileBytes int64         // cap of one source file; 32 MiB
	FetchTimeout time.Duration // whole-download timeout for http(s); 10s
	Client       *http.Client  // default: one with FetchTimeout
	TTL          time.Duration // reuse of an http(s) result; 5 min (file:// is re-read when it changes)
}

// Cache fetches audio by URL once, converts it and keeps the result in
// memory. It is safe for concurrent use; concurrent requests for one URL
// and format share one fetch.
type Cache struct {
	o   Options
	now func() time.Time

	mu       sync.Mutex
	entries  map[key]*list.Element // of *entry
	lru      *list.List
	size     int64
	inflight map[key]*fetch
}

type key struct {
	url string
	f   Format
}

type entry struct {
	k       key
	wav     []byte
	fetched time.Time
	stamp   string // file:// size and mtime when read
}

type fetch struct {
	done chan struct{}
	wav  []byte
	err  error
}

// New returns an empty Cache.
func New(o Options) *Cache {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 32 << 20
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.FetchTimeout}
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	return &Cache{o: o, now: time.Now, entries: map[key]*list.Element{}, lru: list.New(), inflight: map[key]*fetch{}}
}

// WAV returns a complete WAV file in format f of the audio at rawURL
// (file:///abs/path.wav, http:// or https://).
func (c *Cache) WAV(ctx context.Context, rawURL string, f Format) ([]byte, error) {
	k := key{rawURL, f}
	c.mu.Lock()
	if wav, ok := c.fresh(k); ok {
		c.mu.Unlock()
		return wav, nil
	}
	fl, joined := c.inflight[k]
	if !joined {
		fl = &fetch{done: make(chan struct{})}
		c.inflight[k] = fl
	}
	c.mu.Unlock()
	if !joined {
		go c.run(k, fl)
	}
	select {
	case <-fl.done:
		return fl.wav, fl.err
	case <-ctx.Done():
		return nil, fmt.Errorf("audio: %s: %w", Redact(rawURL), ctx.Err())
	}
}

// fresh returns a cached result still valid. Callers hold c.mu.
func (c *Cache) fresh(k key) ([]byte, bool) {
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if e.stamp != "" {
		if st, err := fileStamp(k.url); err != nil || st != e.stamp {
			return nil, false
		}
	} else if c.now().Sub(e.fetched) > c.o.TTL {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.wav, true
}

// run fetches and converts once for every waiter; it is not tied to any
// one caller's context, so a caller giving up does not fail the others.
func (c *Cache) run(k key, fl *fetch) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.FetchTimeout)
	defer cancel()
	src, stamp, err := c.load(ctx, k.url)
	if err == nil {
		fl.wav, err = convertWAV(src, k.f)
	}
	if err != nil {
		fl.err = fmt.Errorf("audio: %s: %w", Redact(k.url), err)
	}
	c.mu.Lock()
	delete(c.inflight, k)
	if err == nil {
		c.store(&entry{k: k, wav: fl.wav, fetched: c.now(), stamp: stamp})
	}
	c.mu.Unlock()
	close(fl.done)
}

func convertWAV(src []byte, f Format) ([]byte, error) {
	s, from, err := Decode(src)
	if err != nil {
		return nil, err
	}
	return Encode(Convert(s, from, f), f), nil
}

// store adds e, evicting the least recently used entries over the cap.
// Callers hold c.mu.
func (c *Cache) store(e *entry) {
	if old, ok := c.entries[e.k]; ok {
		c.size -= int64(len(old.Value.(*entry).wav))
		c.lru.Remove(old)
	}
	if int64(len(e.wav)) > c.o.MaxBytes {
		delete(c.entries, e.k)
		return // served to the waiters, too big to keep
	}
	c.entries[e.k] = c.lru.PushFront(e)
	c.size += int64(len(e.wav))
	for c.size > c.o.MaxBytes {
		last := c.lru.Back()
		le := last.Value.(*entry)
		c.lru.Remove(last)
		delete(c.entries, le.k)
		c.size -= int64(len(le.wav))
	}
}

// load reads the source bytes, refusing files over MaxFileBytes.
func (c *Cache) load(ctx context.Context, rawURL string) ([]byte, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", errors.New("unparsable URL")
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" || len(u.Path) == 0 || u.Path[0] != '/' {
			return nil, "", errors.New("file URL must be file:///absolute/path")
		}
		stamp, err := fileStamp(rawURL)
		if err != nil {
			return nil, "", err
		}
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		b, err := c.readCapped(f)
		return b, stamp, err
	case "http", "https":
		b, err := c.get(ctx, rawURL)
		return b, "", err
	}
	return nil, "", fmt.Errorf("scheme %q not supported (file, http, https)", u.Scheme)
}

func (c *Cache) get(ctx context.Context, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, errors.New("bad URL")
	}
	res, err := c.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, token and all
		}
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, errors.New(res.Status)
	}
	if res.ContentLength > c.o.MaxFileBytes {
		return nil, fmt.Errorf("file of %d bytes is over the %d byte cap", res.ContentLength, c.o.MaxFileBytes)
	}
	return c.readCapped(res.Body)
}

// readCapped reads all of r, failing on more than MaxFileBytes and on any
// read error: a download cut short is an error, never a shorter prompt.
func (c *Cache) readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, c.o.MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.o.MaxFileBytes {
		return nil, fmt.Errorf("file is over the %d byte cap", c.o.MaxFileBytes)
	}
	return b, nil
}

func fileStamp(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(u.Path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano()), nil
}

// Redact drops the userinfo, query and fragment of a URL, which may carry
// credentials, for errors and logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
