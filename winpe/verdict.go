package winpe

import "context"

// verdictOf is what a store file may say about its bytes (httpboot.Verdicter, which the local
// store's WIM files implement: they are verified in the background).
type verdictOf interface {
	Verified() bool
	WaitVerified(ctx context.Context) error
	FullReadChecked() bool
}

// verdict returns the verdict of the store file a raFile serves (the WIM served as is), if it
// has one. Generated BCDs and synthesised WIMs have none.
func (f *raFile) verdict() (verdictOf, bool) {
	outer, _, _ := f.r.Outer()
	v, ok := outer.(verdictOf)
	return v, ok
}

// Verified, WaitVerified and FullReadChecked pass the store file's verdict on to the HTTP
// server (httpboot.Verdicter): a WIM served as is gets no immutable headers and no ranges
// before it is verified. Files without a verdict count as verified.
func (f *raFile) Verified() bool {
	v, ok := f.verdict()
	return !ok || v.Verified()
}

func (f *raFile) WaitVerified(ctx context.Context) error {
	if v, ok := f.verdict(); ok {
		return v.WaitVerified(ctx)
	}
	return nil
}

func (f *raFile) FullReadChecked() bool {
	v, ok := f.verdict()
	return ok && v.FullReadChecked()
}
