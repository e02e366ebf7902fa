//go:build mpi && mpich

package mpi

// See ompi.go for why this line has a file of its own.

// #cgo pkg-config: mpich
import "C"
