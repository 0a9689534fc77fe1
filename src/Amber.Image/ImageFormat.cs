namespace Amber.Image;

/// <summary>Constants of the on-disk checkpoint format (docs/architecture.md §7).</summary>
public static class ImageFormat
{
    /// <summary>The format version this build writes and the only one it reads.</summary>
    public const uint FormatVersion = 2;

    /// <summary>
    /// Page files hold data in units of this size, aligned to it, after a header page of this size;
    /// page runs count, and page checksums cover, pages of this size.
    /// </summary>
    /// <remarks>
    /// A format constant, kept apart from the page size of the machine (Amber.Kernel's <c>Page.Size</c>,
    /// which this layer does not see): changing it changes every image. Memory pages map one to one
    /// onto it, because the format's page is the x86-64 page; a checkpoint records the page size it
    /// was taken with (<c>MmImage.page_size</c>), and a restore refuses one that differs.
    /// Storage checkpoints store file blocks in the same unit.
    /// </remarks>
    public const int PageSize = 4096;

    /// <summary><paramref name="bytes"/> rounded up to whole pages: what page data occupies in a page file.</summary>
    public static int WholePages(int bytes) => (bytes + PageSize - 1) / PageSize * PageSize;

    /// <inheritdoc cref="WholePages(int)"/>
    public static ulong WholePages(ulong bytes) => (bytes + PageSize - 1) / PageSize * PageSize;

    /// <summary>The root of a checkpoint directory, written last.</summary>
    public const string ManifestFileName = "manifest.img";

    /// <summary>The first four bytes of every image file.</summary>
    internal static ReadOnlySpan<byte> Magic => "AMBR"u8;

    /// <summary>
    /// Required by a checkpoint whose page runs use layers (PageRun.layer): a build that does not
    /// know them would read every page from the checkpoint's own page file.
    /// </summary>
    public const string PageLayersFeature = "page-layers";

    /// <summary>
    /// Required by an encrypted checkpoint (Manifest.key_id): a build that does not know it would
    /// take encrypted blocks for pages.
    /// </summary>
    public const string EncryptionFeature = "encryption";

    /// <summary>
    /// Required by a checkpoint of processes in namespaces of their own (Manifest.namespaces): a build
    /// that does not know it would restore them into the host's.
    /// </summary>
    public const string NamespacesFeature = "namespaces";

    /// <summary>
    /// Required by a checkpoint whose network namespace has interfaces besides loopback
    /// (NamespacesImage.links): a build that does not know it would restore it without them.
    /// </summary>
    public const string NetworkLinksFeature = "network-links";

    /// <summary>
    /// Required by a checkpoint that holds pseudo-terminals of its own (ProcessImage.ptys): a build that
    /// does not know them would fail on their fds half-way through a restore.
    /// </summary>
    public const string TerminalsFeature = "terminals";

    /// <summary>Manifest features this build understands (a reader refuses any other required one).</summary>
    internal static IReadOnlySet<string> SupportedFeatures { get; } =
        new HashSet<string>([PageLayersFeature, EncryptionFeature, NamespacesFeature, NetworkLinksFeature, TerminalsFeature], StringComparer.Ordinal);

    /// <summary>
    /// The name of layer <paramref name="layer"/> of page file <paramref name="fileName"/> in a
    /// checkpoint: the name itself for layer 0, <c>pages-42.layer1.img</c> for layer 1 of <c>pages-42.img</c>.
    /// </summary>
    public static string LayerFileName(string fileName, uint layer) =>
        layer == 0 ? fileName : $"{Path.GetFileNameWithoutExtension(fileName)}.layer{layer}{Path.GetExtension(fileName)}";
}
