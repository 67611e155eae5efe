package iso_test

import (
	"fmt"
	"log"
	"os"

	"github.com/pxewim/pxewim/iso"
	"github.com/pxewim/pxewim/wim"
)

// Open a Windows ISO and its boot.wim in place, without extracting anything.
func ExampleOpen() {
	f, err := os.Open("Win11_24H2_English_x64.iso")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	img, err := iso.Open(f, st.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Format(), img.VolumeLabel()) // e.g. "udf 1.02 CCCOMA_X64FRE_EN-US_DV9"
	bootWIM, err := img.OpenFile("sources/boot.wim")
	if err != nil {
		log.Fatal(err)
	}
	archive, err := wim.Open(bootWIM, bootWIM.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(archive.Images())
}
