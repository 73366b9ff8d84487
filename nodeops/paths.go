package nodeops

import (
	"path/filepath"

	"stoker.dev/stoker/api"
)

// Every host path and helper binary nodeops touches, in one place. Host
// paths are absolute as seen on the host and are always joined under the
// applier's root (with securejoin) before use; state-dir paths are joined
// under the state dir, which is a plain host path (the agent's
// --state-dir) and not under the root.
const (
	// SystemdUnitDir is where units and dropins from a rendered config go.
	SystemdUnitDir = "/etc/systemd/system"
	// PasswdFile and GroupFile resolve owner names and the core user's home.
	PasswdFile = "/etc/passwd"
	GroupFile  = "/etc/group"
	// DefaultHomeBase is the parent of a user's home when passwd has none.
	DefaultHomeBase = "/home"
	// SSHKeyFile is the core user's key file below the home directory. It
	// is RHCOS's Ignition fragment (sshd reads authorized_keys.d/* there
	// through the distro's AuthorizedKeysCommand); Stoker owns the whole
	// file.
	SSHKeyFile = ".ssh/authorized_keys.d/ignition"
	// OSTreeBooted marks a host booted from an ostree deployment.
	OSTreeBooted = "/run/ostree-booted"
	// KernelBootIDFile is the kernel's random id of the current boot.
	KernelBootIDFile = "/proc/sys/kernel/random/boot_id"
	// SystemdPrivateSocket is PID 1's own D-Bus socket (root only, no bus
	// daemon needed); SystemBusSocket is the system bus, where logind is.
	SystemdPrivateSocket = "/run/systemd/private"
	SystemBusSocket      = "/run/dbus/system_bus_socket"
	// FIPSFile says whether the running kernel is in FIPS mode.
	FIPSFile = "/proc/sys/crypto/fips_enabled"
	// HostPATH is where helper tools are looked up inside the host's root.
	HostPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DevNull is what a masked unit links to.
	DevNull = "/dev/null"
	// HooksDir holds the node lifecycle hooks, one directory per hook
	// point (HookPoints), run-parts style. They belong to the host: the
	// agent never writes them (a MachineConfig may ship them as files).
	HooksDir = api.HooksDir
	// DefaultStateDir is the agent's default --state-dir.
	DefaultStateDir = "/var/lib/stoker"
)

// Names of files below the state dir.
const (
	journalFile     = "apply-journal.json"
	journalDataDir  = "apply-journal.d"
	origDir         = "orig"
	simulatedBootID = "simulated-boot-id"
	hookPIDFile     = "hook.pid"
)

// Helper binaries, looked up on PATH when used (tests put recording
// stand-ins first on PATH).
const (
	SystemctlBin = "systemctl"
	RpmOstreeBin = "rpm-ostree"
	BootcBin     = "bootc"
	GrubbyBin    = "grubby"
)

// JournalPath is the applier's write-ahead journal in stateDir.
func JournalPath(stateDir string) string { return filepath.Join(stateDir, journalFile) }

// OrigPath is where the original of host path p is kept before Stoker
// first overwrites it (MCO keeps "<path>.mcdorig" next to the file; Stoker
// keeps the tree under <state-dir>/orig so managed directories hold only
// what the config says, and so an original's mode and owner are kept too).
func OrigPath(stateDir, p string) string {
	return filepath.Join(stateDir, origDir, filepath.Clean("/"+p))
}

// HookPIDPath records the process group of the lifecycle hook running.
func HookPIDPath(stateDir string) string { return filepath.Join(stateDir, hookPIDFile) }

// SimulatedBootIDPath holds the boot id the simulate rebooter made up.
func SimulatedBootIDPath(stateDir string) string {
	return filepath.Join(stateDir, simulatedBootID)
}
