using System.Runtime.CompilerServices;

// Every P/Invoke signature in Interop/ is blittable or uses LibraryImport-generated marshalling.
[assembly: DisableRuntimeMarshalling]
