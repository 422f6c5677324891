package rpc

import "github.com/trunkd/trunkd/rpc/api"

// listStream decodes a ListTrunks answer while it arrives, so that little
// is left to decode once its last byte is in (a page of 100 took 60 µs to
// decode after the transfer). Each time more of the frame is in, feed
// reads the TrunkConfigs now complete; finish reads the rest. A
// TrunkConfig read from part of the frame is what decodeListFrame reads
// from the whole one (MessagePack is read front to back; every length is
// checked against what is there), and any other shape, or any failure,
// ends with decodeListFrame's answer on the whole frame.
type listStream struct {
	off     int // where the next TrunkConfig starts; 0 until the head is read
	entries int // entries of the body after "trunks"
	left    int // TrunkConfigs not read yet
	tried   int // the frame's length when the next TrunkConfig was not complete
	trunks  []api.TrunkConfig
	other   bool // not the head the server writes: finish decodes the whole frame
}

// feed reads what frame, the answer so far, completes. A TrunkConfig
// that was not complete is tried again once twice as much of it is in,
// so a long one is read over a bounded number of times.
func (s *listStream) feed(frame []byte) {
	if s.other || len(frame)-s.off < 2*(s.tried-s.off) {
		return
	}
	r := &reader{b: frame, off: s.off}
	if s.off == 0 && !s.head(r) {
		s.tried = len(frame)
		return
	}
	for s.left > 0 {
		s.trunks = append(s.trunks, api.TrunkConfig{}) // read in place: a local would escape
		if readTrunkConfig(r, &s.trunks[len(s.trunks)-1]) != nil {
			s.trunks = s.trunks[:len(s.trunks)-1]
			s.tried = len(frame) // cut short here, or bad: finish tells
			return
		}
		s.left--
		s.off = r.off
	}
}

// head reads {"Ok": {"trunks": [n ...: an Ok answer whose body starts
// with its trunks, as the server writes it. It returns false until that
// much is in, and sets other when the frame has another shape. A read
// that fails may be cut short: it is tried again with more.
func (s *listStream) head(r *reader) bool {
	n, err := r.mapLen()
	if err != nil {
		return false
	}
	tag, err := r.strBytes()
	if err != nil {
		return false
	}
	entries, err := r.mapLen()
	if err != nil {
		return false
	}
	if n != 1 || string(tag) != "Ok" || entries == 0 {
		s.other = true
		return false
	}
	k, err := r.strBytes()
	if err != nil {
		return false
	}
	if string(k) != "trunks" || r.isNil() {
		s.other = true
		return false
	}
	left, err := r.arrayLen()
	if err != nil {
		return false
	}
	s.off, s.entries, s.left = r.off, entries-1, left
	s.trunks = make([]api.TrunkConfig, 0, min(left, MaxListLimit)) // left is the peer's word
	return true
}

// finish decodes the whole frame into resp as decodeListFrame does, with
// what feed read already, and says whether it did (false leaves resp
// alone, for msgpack's decoder).
func (s *listStream) finish(frame []byte, resp *ListTrunksResponse) bool {
	s.tried = s.off
	s.feed(frame)
	if s.other || s.off == 0 || s.left > 0 {
		return decodeListFrame(frame, resp)
	}
	r := &reader{b: frame, off: s.off}
	l := ListTrunksResponse{Trunks: s.trunks}
	if readListEntries(r, &l, s.entries, true) != nil || r.remaining() != 0 {
		return false
	}
	*resp = l
	return true
}
