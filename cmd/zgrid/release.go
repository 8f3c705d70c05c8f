package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/release"
)

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Sign and publish node software (The Update Framework)",
		Long: `Release managers sign the software nodes run. A release repository (a
directory, --repo) holds The Update Framework's metadata: a root naming the
keys of four roles (root, targets, snapshot, timestamp) and how many of each
must sign, and the signed list of targets (zgridd-linux-amd64, a kernel, an
initramfs) with their lengths, SHA-256 and release version. Nodes trust only
the root they were given at first boot and follow its signed rotations; a
hub or a mirror in between can withhold releases but not change them.

A typical life:
  zgrid release keys new --role root --out root1.key      (and root2, root3)
  zgrid release keys new --role targets --out targets.key   (also snapshot, timestamp)
  zgrid release init --repo R --root-keys root1.key,root2.key,root3.key --threshold 2 \
      --targets-keys targets.key --snapshot-key snapshot.key --timestamp-key timestamp.key
  zgrid release publish --repo R --version 2 --keys targets.key,snapshot.key,timestamp.key \
      --hub http://HUB zgridd-linux-amd64=./zgridd
  zgrid release refresh --repo R --keys snapshot.key,timestamp.key --hub http://HUB   (daily: the timestamp lasts 1 day)

Signing can happen offline: publish without --hub (or with --sign-only)
writes only to the repository directory; 'zgrid release push' uploads it.
Key files are encrypted (Argon2id); their passphrase comes from
ZGRID_PASSPHRASE or a prompt for each file.`,
	}
	cmd.AddCommand(newReleaseKeysCmd(g), newReleaseInitCmd(g), newReleasePublishCmd(g), newReleaseRefreshCmd(g),
		newReleaseRotateCmd(g), newReleasePushCmd(g), newReleaseStatusCmd(g))
	return cmd
}

func newReleaseKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Make release keys"}
	var role, out string
	nw := &cobra.Command{
		Use:   "new --role ROLE --out FILE",
		Short: "Make a key for one release role (root, targets, snapshot or timestamp)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !validRole(role) {
				return fmt.Errorf("--role %q: want root, targets, snapshot or timestamp", role)
			}
			if out == "" {
				return fmt.Errorf("--out FILE is required")
			}
			k, err := identity.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			kf, err := identity.NewKeyFile(release.KeyKind(role), k)
			if err != nil {
				return err
			}
			return g.writeNewKey(out, kf)
		},
	}
	nw.Flags().StringVar(&role, "role", "", "root, targets, snapshot or timestamp")
	nw.Flags().StringVar(&out, "out", "", "key file to write (must not exist)")
	cmd.AddCommand(nw)
	return cmd
}

func validRole(r string) bool {
	switch r {
	case release.RoleRoot, release.RoleTargets, release.RoleSnapshot, release.RoleTimestamp:
		return true
	}
	return false
}

// releaseKeyFlags name the key files of each role.
type releaseKeyFlags struct {
	root, targets               []string
	snapshot, timestamp         []string
	threshold, targetsThreshold int
}

func (k *releaseKeyFlags) add(cmd *cobra.Command, rootHelp string) {
	fl := cmd.Flags()
	fl.StringSliceVar(&k.root, "root-keys", nil, rootHelp)
	fl.IntVar(&k.threshold, "threshold", 2, "root signatures required (of --root-keys)")
	fl.StringSliceVar(&k.targets, "targets-keys", nil, "key files of the targets role (public halves are read)")
	fl.IntVar(&k.targetsThreshold, "targets-threshold", 1, "targets signatures required")
	fl.StringSliceVar(&k.snapshot, "snapshot-key", nil, "key file of the snapshot role")
	fl.StringSliceVar(&k.timestamp, "timestamp-key", nil, "key file of the timestamp role")
}

// publicKeys reads the public halves of key files of role.
func publicKeys(role string, paths []string) ([]identity.PublicKey, error) {
	var out []identity.PublicKey
	for _, p := range paths {
		kind, pub, err := identity.ReadKeyFilePublic(p)
		if err != nil {
			return nil, err
		}
		if kind != release.KeyKind(role) {
			return nil, fmt.Errorf("%s is a %s key, not a %s key", p, kind, release.KeyKind(role))
		}
		out = append(out, pub)
	}
	return out, nil
}

// privateKeys decrypts key files and sorts them by role.
func privateKeys(g *globals, paths []string) (release.Signers, error) {
	out := release.Signers{}
	for _, p := range paths {
		pass, err := identity.Passphrase("Passphrase for "+p+": ", false, os.Stdin, g.stderr)
		if err != nil {
			return nil, err
		}
		kf, err := identity.ReadKeyFile(p, pass)
		if err != nil {
			return nil, err
		}
		role, ok := strings.CutPrefix(string(kf.Kind), "release-")
		if !ok || !validRole(role) {
			return nil, fmt.Errorf("%s is a %s key, not a release key (zgrid release keys new)", p, kf.Kind)
		}
		out[role] = append(out[role], kf.Key)
	}
	return out, nil
}

// roleSet builds the keys of all roles; a role with no files given keeps
// the keys of current (nil: none).
func (k *releaseKeyFlags) roleSet(current *release.Status, repo string) (release.RoleSet, error) {
	rs := release.RoleSet{}
	for _, r := range []struct {
		role      string
		paths     []string
		threshold int
	}{{release.RoleRoot, k.root, k.threshold}, {release.RoleTargets, k.targets, k.targetsThreshold},
		{release.RoleSnapshot, k.snapshot, 1}, {release.RoleTimestamp, k.timestamp, 1}} {
		if len(r.paths) == 0 && current != nil {
			keys, th, err := currentRole(repo, r.role)
			if err != nil {
				return nil, err
			}
			rs[r.role] = release.RoleKeys{Keys: keys, Threshold: th}
			continue
		}
		pubs, err := publicKeys(r.role, r.paths)
		if err != nil {
			return nil, err
		}
		if len(pubs) == 0 {
			return nil, fmt.Errorf("no key files for the %s role: give --%s", r.role, map[string]string{
				release.RoleRoot: "root-keys", release.RoleTargets: "targets-keys", release.RoleSnapshot: "snapshot-key", release.RoleTimestamp: "timestamp-key"}[r.role])
		}
		rs[r.role] = release.RoleKeys{Keys: pubs, Threshold: r.threshold}
	}
	return rs, nil
}

func currentRole(repo, role string) ([]identity.PublicKey, int, error) {
	return (&release.Repo{Dir: repo}).RoleKeys(role)
}

func newReleaseInitCmd(g *globals) *cobra.Command {
	var repo string
	k := &releaseKeyFlags{}
	cmd := &cobra.Command{
		Use:   "init --repo DIR --root-keys A,B,C --targets-keys T --snapshot-key S --timestamp-key T",
		Short: "Start a release repository: write its root metadata, signed by the root keys",
		Long: `Writes version 1 of the root metadata to DIR: the keys of each role and how
many must sign (root: --threshold of --root-keys, default 2; targets:
--targets-threshold). The root key files are decrypted to sign; of the other
roles only the public halves are read. Give DIR/root.json to nodes
(zgridd node --release-root) and to the hub (zgridd hub --release-root).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" {
				return fmt.Errorf("--repo DIR is required")
			}
			rs, err := k.roleSet(nil, repo)
			if err != nil {
				return err
			}
			signers, err := privateKeys(g, k.root)
			if err != nil {
				return err
			}
			if err := (&release.Repo{Dir: repo}).Init(rs, signers[release.RoleRoot]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "release repository initialised: %s (give %s to nodes and the hub)\n", repo, filepath.Join(repo, "root.json"))
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory")
	k.add(cmd, "key files of the root role (decrypted to sign)")
	return cmd
}

func newReleasePublishCmd(g *globals) *cobra.Command {
	var repo, version, minVersion, hub string
	var keys []string
	var signOnly bool
	cmd := &cobra.Command{
		Use:   "publish --repo DIR --version V --keys K,… [--hub URL] NAME=FILE…",
		Short: "Publish a release: add its files as targets and sign targets, snapshot and timestamp",
		Long: `Adds each FILE as target NAME (NAME=FILE; a FILE alone is named by its base
name; nodes look for zgridd-linux-amd64), with release version V, and signs
new targets, snapshot and timestamp metadata with --keys (key files of those
roles; enough of them to meet each threshold). Versions are dot-separated
numbers and only go up. --min-version M marks releases below M as too old to
accept new contracts. With --hub (and without --sign-only) the repository is
pushed to the hub afterwards.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if repo == "" || version == "" {
				return fmt.Errorf("--repo DIR and --version V are required")
			}
			var files []release.File
			for _, a := range args {
				name, path, ok := strings.Cut(a, "=")
				if !ok {
					name, path = filepath.Base(a), a
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				files = append(files, release.File{Name: name, Data: b})
			}
			signers, err := privateKeys(g, keys)
			if err != nil {
				return err
			}
			if err := (&release.Repo{Dir: repo}).Publish(version, minVersion, files, signers); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "release %s signed in %s\n", version, repo)
			return pushIf(cmd, g, hub, repo, signOnly)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&repo, "repo", "", "repository directory")
	fl.StringVar(&version, "version", "", "release version (dot-separated numbers, newer than the last)")
	fl.StringVar(&minVersion, "min-version", "", "oldest release that may still accept new contracts")
	fl.StringSliceVar(&keys, "keys", nil, "key files of the targets, snapshot and timestamp roles")
	fl.StringVar(&hub, "hub", "", "hub to push the repository to")
	fl.BoolVar(&signOnly, "sign-only", false, "only sign into --repo (for an offline machine); push later with 'zgrid release push'")
	return cmd
}

func pushIf(cmd *cobra.Command, g *globals, hub, repo string, signOnly bool) error {
	if hub == "" || signOnly {
		return nil
	}
	msg, err := release.Push(cmd.Context(), &http.Client{Timeout: 10 * time.Minute}, hub, repo)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "pushed to %s: %s\n", hub, msg)
	return nil
}

func newReleaseRefreshCmd(g *globals) *cobra.Command {
	var repo, hub string
	var keys []string
	var signOnly bool
	cmd := &cobra.Command{
		Use:   "refresh --repo DIR --keys K,… [--hub URL]",
		Short: "Re-sign snapshot and timestamp (and targets, if its keys are given) with new expiries",
		Long: `The timestamp expires after a day and the snapshot after a week, so that a
frozen mirror is noticed: run refresh before then (e.g. daily from a timer)
with the snapshot and timestamp keys, and after a rotation of any of those
roles' keys with the new ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" {
				return fmt.Errorf("--repo DIR is required")
			}
			signers, err := privateKeys(g, keys)
			if err != nil {
				return err
			}
			if err := (&release.Repo{Dir: repo}).Refresh(signers); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "refreshed %s\n", repo)
			return pushIf(cmd, g, hub, repo, signOnly)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&repo, "repo", "", "repository directory")
	fl.StringSliceVar(&keys, "keys", nil, "key files of the snapshot and timestamp roles (and targets to re-sign it)")
	fl.StringVar(&hub, "hub", "", "hub to push the repository to")
	fl.BoolVar(&signOnly, "sign-only", false, "only sign into --repo")
	return cmd
}

func newReleaseRotateCmd(g *globals) *cobra.Command {
	var repo string
	var oldRoot []string
	k := &releaseKeyFlags{}
	cmd := &cobra.Command{
		Use:   "rotate --repo DIR --old-root-keys A,B --root-keys X,Y,Z [--targets-keys …]",
		Short: "Write the next root: new keys for some roles, signed by the old and the new root keys",
		Long: `Writes root version N+1 with the keys given (roles whose keys are not given
keep theirs), signed by a threshold of the current root keys
(--old-root-keys) and a threshold of the new ones (--root-keys, decrypted to
sign). Nodes follow the rotation on their next check; metadata signed only by
a retired key is refused from then on. If the targets, snapshot or timestamp
keys changed, run 'zgrid release refresh' with the new keys, then push.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" || len(oldRoot) == 0 || len(k.root) == 0 {
				return fmt.Errorf("--repo DIR, --old-root-keys and --root-keys are required")
			}
			st, err := (&release.Repo{Dir: repo}).Status()
			if err != nil {
				return err
			}
			rs, err := k.roleSet(st, repo)
			if err != nil {
				return err
			}
			olds, err := privateKeys(g, oldRoot)
			if err != nil {
				return err
			}
			news, err := privateKeys(g, k.root)
			if err != nil {
				return err
			}
			if err := (&release.Repo{Dir: repo}).Rotate(rs, olds[release.RoleRoot], news[release.RoleRoot]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "root rotated in %s; push it (zgrid release push) after any refresh\n", repo)
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory")
	cmd.Flags().StringSliceVar(&oldRoot, "old-root-keys", nil, "key files of the current root role (decrypted to sign)")
	k.add(cmd, "key files of the new root role (decrypted to sign)")
	return cmd
}

func newReleasePushCmd(g *globals) *cobra.Command {
	var repo, hub string
	cmd := &cobra.Command{
		Use:   "push --repo DIR --hub URL",
		Short: "Upload a repository's signed files to a hub (which checks them before serving them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" || hub == "" {
				return fmt.Errorf("--repo DIR and --hub URL are required")
			}
			return pushIf(cmd, g, hub, repo, false)
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory")
	cmd.Flags().StringVar(&hub, "hub", "", "hub URL")
	return cmd
}

func newReleaseStatusCmd(g *globals) *cobra.Command {
	var repo string
	cmd := &cobra.Command{
		Use:   "status --repo DIR [-o json]",
		Short: "Show a repository's roles (versions, expiries, who signed) and targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" {
				return fmt.Errorf("--repo DIR is required")
			}
			st, err := (&release.Repo{Dir: repo}).Status()
			if err != nil {
				return err
			}
			return g.print(st, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\tSIGNED")
				for _, r := range st.Roles {
					exp := r.Expires.Format(time.RFC3339)
					if r.Expired {
						exp += " (EXPIRED)"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d of %d keys (threshold %d)\n", r.Role, r.Version, exp, len(r.SignedBy), len(r.Keys), r.Threshold)
				}
				fmt.Fprintln(tw, "\nTARGET\tVERSION\tBYTES\tSHA-256")
				for _, t := range st.Targets {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", t.Name, t.Version, t.Length, t.SHA256)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory")
	return cmd
}
