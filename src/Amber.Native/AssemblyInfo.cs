using System.Runtime.CompilerServices;

// Every signature below is blittable; nothing is marshalled behind our back.
[assembly: DisableRuntimeMarshalling]
