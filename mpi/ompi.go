//go:build mpi && !mpich

package mpi

// The pkg-config line sits alone in a build-tagged file so that switching
// between OpenMPI and MPICH changes the file list, which enters the build cache
// key (golang/go#73033: the pkg-config selection itself does not).

// #cgo pkg-config: ompi-c
import "C"
