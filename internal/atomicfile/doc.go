// Package atomicfile writes files so that readers see the old content or the
// complete new content, never a half-written file: the data go to a temporary
// file in the same directory, which is synced, closed and renamed over the
// target; the directory is synced so that the rename survives a crash.
package atomicfile
