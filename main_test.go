package cowfs

import (
	"os"
	"testing"

	"github.com/cowfs/cowfs/internal/permcases"
)

// TestMain lets the test binary serve as permcases' child process (an
// operation run as another user).
func TestMain(m *testing.M) {
	permcases.MaybeChild()
	os.Exit(m.Run())
}
