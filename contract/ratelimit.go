package contract

// CommandRate is the limit on the commands of one identity (the {operator}
// of cmd/{operator}; the plain cmd topic counts as one identity), announced
// in info: Burst commands at once, refilled at PerSecond, are handled;
// beyond that a command is answered busy, unjournaled; beyond CapPerSecond
// in one second it is dropped without an answer, and one system_fault of
// source commands names the identity. Other identities are not affected.
type CommandRate struct {
	PerSecond    int `json:"per_s"`
	Burst        int `json:"burst"`
	CapPerSecond int `json:"cap_per_s"`
}
