package api

// Size limits the hub and the agent share, so a config the hub accepts is
// one every node accepts. Each is checked before the bytes are read or
// expanded.
const (
	// DefaultMaxFileBytes caps the decompressed contents of one file of a
	// config (a gzip data URL expands at most to this).
	DefaultMaxFileBytes = 32 << 20
	// DefaultMaxConfigBytes caps the decompressed contents of all files of
	// one config together (a MachineConfig on the hub, a rendered config
	// on both sides).
	DefaultMaxConfigBytes = 128 << 20
	// MaxYAMLBytes caps one manifest file of the config repo. It leaves
	// room over MaxRenderedBytes so an oversize MachineConfig is still
	// read and refused with its file and field.
	MaxYAMLBytes = 8 << 20
	// MaxBlobBytes caps any one file read from Git (checked from the
	// object's header, before its content is read).
	MaxBlobBytes = MaxYAMLBytes
)
