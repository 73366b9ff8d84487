// Command stoker is the single Stoker binary. main only wires flags into
// each package's Options and calls its Run; it picks the exit code and
// nothing else.
package main
