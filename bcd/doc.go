// Package bcd writes Windows registry hive files and, on top of that,
// Boot Configuration Data stores for booting Windows PE from a ramdisk.
package bcd
