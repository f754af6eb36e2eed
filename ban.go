package fednode

import "time"

// Ban is a refusal of every request from one client key (an IP address or
// an IPv6 /64) until a time. Level counts how many bans the key has had in
// a row; each one lasts longer.
type Ban struct {
	Key       string
	Until     time.Time
	Reason    string
	Level     int
	CreatedAt time.Time
}

// Active reports whether the ban is in force at now.
func (b Ban) Active(now time.Time) bool { return now.Before(b.Until) }
